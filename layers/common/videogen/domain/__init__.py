"""The vocabulary of videogen: generation records, errors, the model catalog and the ports
(Protocols and result types) that the logic calls and the adapters implement. Imports nothing
else of the package."""

"""Running videogen without AWS: aws/ (AWS emulation on moto), simulator/ (the AIML API
simulator), stack.py (both composed with the real handlers: `make local`), demo/ (`make demo`),
clock.py (a fake clock for tests and scenarios), assets/ (sample media for the simulator, the demo
and the tests)."""

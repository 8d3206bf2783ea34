"""`videogen`: the command-line client of the videogen API.

A plain HTTPS client of the API (requests) plus boto3 for image uploads to the uploads bucket.
It never imports the Lambda layer's `videogen` package: what it knows about models comes from
`GET /models`, and every request is checked by the API itself.
"""

__version__ = "0.1.0"

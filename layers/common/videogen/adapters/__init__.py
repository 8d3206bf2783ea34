"""The outside world behind the domain's ports: DynamoDB, the AIML API, S3, URL safety, webhook
signing, Lambda. Each adapter imports the domain only; bootstrap hands them to the logic."""

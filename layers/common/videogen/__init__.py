"""videogen: turn prompts and images into videos through the AIML API, on AWS serverless."""

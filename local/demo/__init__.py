"""The end-to-end demo (`make demo`, `python -m local.demo`): a LocalStack driven as a user would.

api.py drives the REST API (text-to-video, image-to-video, an upload to the uploads bucket),
workflow.py runs one execution of the generation workflow on Step Functions, common.py holds what
both use, and __main__.py starts the stack, runs both parts and prints the summary.
"""

"""AWS emulation on moto for the local stack: cfn.py reads template.yaml and creates its resources,
apigw.py serves the REST API as API Gateway would, lambdas.py runs moto's Lambda invocations
in-process, statemachines.py creates the state machines, pollers.py plays the event source
mappings, and moto_dynamodb.py makes moto's conditional writes atomic."""

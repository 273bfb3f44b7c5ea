"""RabbitMQ: the topology, the broker and its publishers, retries and the parking queue."""

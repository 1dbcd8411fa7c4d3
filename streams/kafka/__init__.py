"""The Kafka edge: the faust worker, bulk consumption, aiokafka producers and client authentication.

The worker calls the pure core and writes through the ClickHouse sink; it never imports the read
side."""

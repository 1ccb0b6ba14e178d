"""The Postgres side of the domain: repositories, the durable event writer, migrations."""

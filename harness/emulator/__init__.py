"""The Aurora emulator: an RDS-compatible control plane over real PostgreSQL and MariaDB processes."""

# The tally image: the same code as the embedded default; only TALLY_KAFKA / TALLY_CLICKHOUSE differ.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY schemas ./schemas
# Editable install: `tally init` applies schemas/clickhouse/*.sql from this checkout.
RUN pip install --no-cache-dir -e .
ENTRYPOINT ["tally"]
CMD ["--help"]

"""Ingest: decoding and validating batches, the Lua-applied aggregates, the journal of sent
batches and the pipeline that ties them together (see pipeline.py)."""

"""The media service: stores the files the modality services produce and serves them back by id."""

"""KFP artifact types of this project."""

from kfp import dsl


class Examples(dsl.Artifact):
    """TFX's Examples artifact: a directory of Split-<name>/ folders of gzip TFRecords.

    schema_title "tfx.Examples" is the type name TFX components compiled for KFP v2 and
    Vertex AI Pipelines resolve to their standard Examples class, so they accept this
    artifact as input. Metadata holds TFX's properties: split_names (JSON list string),
    span, version, input_fingerprint, payload_format, file_format, example_counts.
    """

    schema_title = "tfx.Examples"
    schema_version = "0.0.1"

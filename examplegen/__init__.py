"""kfp-examplegen engine: raw data to TFX-compatible tf.Example TFRecords.

This package never imports kfp; it is usable from a notebook, a Beam job or the CLI.
"""

__version__ = "0.1.0"

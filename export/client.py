"""Clients for a pix2pix_tf model served by TF Serving (REST and gRPC).

REST needs only the standard library; gRPC needs ``grpcio`` (installed with TensorFlow) and the
request protos of ``tensorflow-serving-api``. That package depends on the full ``tensorflow``
wheel; with ``tensorflow-cpu`` already installed, add it without dependencies:
``pip install --no-deps tensorflow-serving-api``.

    python export/client.py rest photo.jpg out.png --url http://localhost:8501/v1/models/pix2pix
    python export/client.py grpc photo.jpg out.png --target localhost:8500 --model pix2pix

The ``encoded`` signature takes JPEG/PNG bytes of any size and returns PNG bytes.
"""

import argparse
import base64
import json
import sys
import urllib.request

SIGNATURE = "encoded"
INPUT = "image_bytes"
OUTPUT = "output_bytes"


def rest_payload(images):
    """The JSON body of a REST :predict call: one ``{"b64": ...}`` instance per image."""
    return {"signature_name": SIGNATURE,
            "instances": [{"b64": base64.b64encode(data).decode("ascii")} for data in images]}


def rest_outputs(response):
    """PNG bytes from a REST :predict response (string outputs come back base64-encoded)."""
    predictions = response["predictions"]
    return [base64.b64decode(p["b64"] if isinstance(p, dict) and "b64" in p else p[OUTPUT]["b64"])
            for p in predictions]


def rest_predict(url, images, timeout=60):
    body = json.dumps(rest_payload(images)).encode()
    request = urllib.request.Request(url.rstrip("/") + ":predict", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        return rest_outputs(json.loads(reply.read()))


def grpc_request(images, model_name="pix2pix", version=None):
    """A ``PredictRequest`` for the ``encoded`` signature."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = SIGNATURE
    if version is not None:
        request.model_spec.version.value = version
    request.inputs[INPUT].CopyFrom(tf.make_tensor_proto(list(images), dtype=tf.string))
    return request


def grpc_outputs(response):
    import tensorflow as tf

    return list(tf.make_ndarray(response.outputs[OUTPUT]))


def grpc_predict(target, images, model_name="pix2pix", timeout=60):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return grpc_outputs(stub.Predict(grpc_request(images, model_name), timeout))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Translate an image with a served model.")
    parser.add_argument("protocol", choices=["rest", "grpc"])
    parser.add_argument("image")
    parser.add_argument("output")
    parser.add_argument("--url", default="http://localhost:8501/v1/models/pix2pix")
    parser.add_argument("--target", default="localhost:8500")
    parser.add_argument("--model", default="pix2pix")
    args = parser.parse_args(argv)
    with open(args.image, "rb") as f:
        data = f.read()
    if args.protocol == "rest":
        (png,) = rest_predict(args.url, [data])
    else:
        (png,) = grpc_predict(args.target, [data], args.model)
    with open(args.output, "wb") as f:
        f.write(png)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    sys.exit(main())

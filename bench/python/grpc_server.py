"""gRPC server for `make bench`: outliers.detect and bench_funcs.const as a service.

Usage: grpc_server.py PROTO_FILE

Binds 127.0.0.1 on a free port and prints `port=N` once serving. It exits when
its standard input closes (the bench ended, however it ended) and in any case
after MAX_SECONDS, so it never outlives the bench.
"""
import os
import sys
import tempfile
import threading
from concurrent import futures

import grpc
import numpy as np
from grpc_tools import protoc

import bench_funcs
import outliers

MAX_SECONDS = 15 * 60
MAX_MESSAGE = 64 * 1024 * 1024


def load_stubs(proto_file):
    """Compile the .proto with grpcio-tools' protoc and import the stubs.

    The stubs are generated into a temporary directory that is removed once
    they are imported (they stay loaded), so nothing is left behind.
    """
    proto_dir = os.path.dirname(os.path.abspath(proto_file))
    with tempfile.TemporaryDirectory(prefix="py-in-mem-bench-") as out_dir:
        rc = protoc.main([
            "protoc",
            f"-I{proto_dir}",
            f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            os.path.abspath(proto_file),
        ])
        if rc != 0:
            sys.exit(f"protoc failed on {proto_file} (exit {rc})")
        sys.path.insert(0, out_dir)
        try:
            import outliers_pb2
            import outliers_pb2_grpc
        finally:
            sys.path.remove(out_dir)
    return outliers_pb2, outliers_pb2_grpc


def main():
    pb, pb_grpc = load_stubs(sys.argv[1])

    def serve(func):
        def handler(request, context):
            data = np.fromiter(request.values, dtype=np.float64, count=len(request.values))
            return pb.Indices(indices=func(data).tolist())
        return handler

    class Servicer(pb_grpc.OutliersServicer):
        Detect = staticmethod(serve(outliers.detect))
        Const = staticmethod(serve(bench_funcs.const))

    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
    ]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=options)
    pb_grpc.add_OutliersServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    if port == 0:
        sys.exit("could not bind 127.0.0.1")
    server.start()
    print(f"port={port}", flush=True)

    def stop_when_stdin_closes():
        sys.stdin.read()
        server.stop(grace=None)

    threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    server.wait_for_termination(timeout=MAX_SECONDS)
    server.stop(grace=None)


if __name__ == "__main__":
    main()

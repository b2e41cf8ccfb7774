#!/usr/bin/env python3
"""A grpcio-health-checking client of grpc.health.v1.Health: the peer a load balancer or
Kubernetes' gRPC probe would be.

    python health_client.py --target HOST:PORT [--service NAME] [--watch N]

Prints one JSON object on stdout: {"check": STATUS or the gRPC code's name, "watch": [STATUS, ...]}.
With --watch N, it also watches the service and records the first N statuses it sends, or
those it sent before the server ended the call (10 s at most).
"""

import argparse
import json
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--service", default="")
    parser.add_argument("--watch", type=int, default=0)
    args = parser.parse_args()
    result = {}
    with grpc.insecure_channel(args.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=args.service), timeout=10)
            result["check"] = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        except grpc.RpcError as error:
            result["check"] = error.code().name
        if args.watch:
            statuses = []
            try:
                stream = stub.Watch(health_pb2.HealthCheckRequest(service=args.service), timeout=10)
                for response in stream:
                    statuses.append(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))
                    print(json.dumps({"watching": statuses}), file=sys.stderr, flush=True)
                    if len(statuses) >= args.watch:
                        break
                result["watch_end"] = "ended" if len(statuses) < args.watch else "enough"
            except grpc.RpcError as error:
                result["watch_end"] = error.code().name
            result["watch"] = statuses
    print(json.dumps(result))


if __name__ == "__main__":
    main()

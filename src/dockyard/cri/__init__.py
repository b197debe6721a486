"""The Kubernetes Container Runtime Interface (CRI v1, k8s.io/cri-api's
api.proto) served over gRPC on its own unix socket: a top floor like api/,
thin handlers that call the daemon's services."""

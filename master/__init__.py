"""Control plane: discovery, dispatch, the reconciler and node liveness."""

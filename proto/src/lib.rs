//! Baton's gRPC wire contract (`baton.v1`): generated code and a typed client.

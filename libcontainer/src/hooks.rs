//! OCI hooks: run one hook list with the state JSON on stdin, honouring
//! args, env and timeout.

//! Checking `linux.resources` against the controllers this host has, before
//! anything is created. (Issue 3: every controller on every host layout.)

//! srs-proxy library

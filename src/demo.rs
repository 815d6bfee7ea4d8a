//! `hookwatch --demo`.

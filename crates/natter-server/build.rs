//! Rebuilds the binary when the embedded web client changes.
fn main() {
    println!("cargo:rerun-if-changed=../../web");
}

// The migrations are embedded at compile time (`herald_runtime::migrations!`); a new file in the
// directory must rebuild the crate, which cargo does not see by itself.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

use super::*;

#[test]
fn ancestors_walk_to_root() {
    let got: Vec<&str> = ancestors("/a/b/c").collect();
    assert_eq!(got, ["/a/b/c", "/a/b", "/a", "/"]);
    let got: Vec<&str> = ancestors("/").collect();
    assert_eq!(got, ["/"]);
    let got: Vec<&str> = ancestors("relative").collect();
    assert_eq!(got, ["relative"]);
}

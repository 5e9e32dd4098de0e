const std = @import("std");
export fn bottomless_version() [*:0]const u8 {
    return "0.1.0";
}

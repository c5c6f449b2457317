import HTTPCore
import PinGlass

extension Response {
    /// The simulator's JSON answers (the API's own live in PinGlassWeb, which it does not link).
    static func json(_ value: JSON, status: Int = 200) -> Response { .jsonBytes(value.bytes, status: status) }
}

import JSON

/// The bodies handlers answer with most: JSON (the API, the simulator) and plain text.
extension Response {
    public static func json(_ value: JSON, status: Int = 200) -> Response {
        Response(status: status, headers: [("Content-Type", "application/json; charset=utf-8")], body: value.bytes)
    }

    public static func jsonBytes(_ bytes: [UInt8], status: Int = 200) -> Response {
        Response(status: status, headers: [("Content-Type", "application/json; charset=utf-8")], body: bytes)
    }

    public static func text(_ body: String, status: Int = 200) -> Response {
        Response(status: status, contentType: "text/plain; charset=utf-8", body: body)
    }
}

import HTTPCore
import JSON
import WebURL

/// A Bot API call's parameters, however they came (https://core.telegram.org/bots/api#making-requests):
/// the query string, then a JSON object, `application/x-www-form-urlencoded` or
/// `multipart/form-data` body (the body wins). Form and multipart values are strings, so a
/// structured value (`media`) is JSON-serialized there; in a JSON body it may be the array
/// itself. Multipart parts with a file name are uploads.
///
/// ```swift
/// let call = try BotRequest(request)
/// call.string("chat_id"); call.json("media"); call.files["photo0"]
/// ```
struct BotRequest {
    var fields: [String: JSON] = [:]
    var files: [String: Multipart.Part] = [:]

    struct Unreadable: Error, CustomStringConvertible {
        let description: String
    }

    init(_ request: Request) throws {
        for (k, v) in request.query { fields[k] = .string(v) }
        guard !request.body.isEmpty else { return }
        let type = (request.header("content-type") ?? "").lowercased()
        if type.hasPrefix("application/json") {
            guard let body = try? JSON.parse(request.body), let pairs = body.objectValue else {
                throw Unreadable(description: "Bad Request: can't parse JSON object")
            }
            for (k, v) in pairs { fields[k] = v }
        } else if type.hasPrefix("multipart/form-data") {
            do {
                let parts = try Multipart.parse(request.body, boundary: Multipart.boundary(contentType: request.header("content-type") ?? ""))
                for part in parts {
                    if part.filename != nil {
                        files[part.name] = part
                    } else {
                        fields[part.name] = .string(String(decoding: part.data, as: UTF8.self))
                    }
                }
            } catch {
                throw Unreadable(description: "Bad Request: \(error)")
            }
        } else if type.hasPrefix("application/x-www-form-urlencoded") {
            for pair in String(decoding: request.body, as: UTF8.self).split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard let k = percentDecode(String(kv[0])), let v = percentDecode(kv.count > 1 ? String(kv[1]) : "") else {
                    throw Unreadable(description: "Bad Request: can't parse form data")
                }
                fields[k] = .string(v)
            }
        } else {
            throw Unreadable(description: "Bad Request: unsupported Content-Type \(type.prefix(60))")
        }
    }

    /// A scalar parameter as text (numbers and booleans as written); nil when absent or empty.
    func string(_ name: String) -> String? {
        guard let v = fields[name]?.scalarText, !v.isEmpty else { return nil }
        return v
    }

    /// A structured parameter: the value itself from a JSON body, the parsed text otherwise.
    func json(_ name: String) -> JSON? {
        switch fields[name] {
        case .string(let s)?: return try? JSON.parse(s)
        case let v?: return v
        case nil: return nil
        }
    }
}

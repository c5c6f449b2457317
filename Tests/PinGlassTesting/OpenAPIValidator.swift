import PinGlass
import JSON

/// Checks an answer against the OpenAPI document the service publishes (the subset of JSON
/// Schema it uses: type, required, properties, items, enum, nullable, $ref).
public struct OpenAPIValidator {
    public let document: JSON

    public init(document: JSON) { self.document = document }

    /// Problems found (empty: the answer matches the documented schema for that status).
    public func problems(path: String, method: String, status: Int, body: [UInt8]) -> [String] {
        guard let op = document["paths"]?[path]?[method.lowercased()] else { return ["\(method) \(path) is not documented"] }
        guard let response = op["responses"]?[String(status)] else { return ["status \(status) of \(method) \(path) is not documented"] }
        guard let schema = response["content"]?["application/json"]?["schema"] else { return [] }
        guard let value = try? JSON.parse(body) else { return ["answer is not JSON"] }
        return check(value, schema, at: "$")
    }

    func resolve(_ schema: JSON) -> JSON {
        guard let ref = schema["$ref"]?.stringValue, ref.hasPrefix("#/") else { return schema }
        var node: JSON? = document
        for part in ref.dropFirst(2).split(separator: "/") { node = node?[String(part)] }
        return node ?? [:]
    }

    func check(_ value: JSON, _ raw: JSON, at path: String) -> [String] {
        let schema = resolve(raw)
        if value.isNull { return schema["nullable"] == true ? [] : ["\(path): null is not allowed"] }
        var out: [String] = []
        if let allowed = schema["enum"]?.arrayValue, !allowed.contains(value) { out.append("\(path): \(value.serialized) not in enum") }
        switch schema["type"]?.stringValue {
        case "object"?:
            guard let pairs = value.objectValue else { return out + ["\(path): expected an object"] }
            let keys = Set(pairs.map(\.0))
            for req in schema["required"]?.arrayValue ?? [] {
                if let k = req.stringValue, !keys.contains(k) { out.append("\(path): missing \(k)") }
            }
            for (k, v) in pairs { if let sub = schema["properties"]?[k] { out += check(v, sub, at: path + "." + k) } }
        case "array"?:
            guard let items = value.arrayValue else { return out + ["\(path): expected an array"] }
            if let itemSchema = schema["items"] {
                for (i, item) in items.enumerated() { out += check(item, itemSchema, at: "\(path)[\(i)]") }
            }
        case "string"?: if value.stringValue == nil { out.append("\(path): expected a string") }
        case "boolean"?: if value.boolValue == nil { out.append("\(path): expected a boolean") }
        case "integer"?: if value.intValue == nil { out.append("\(path): expected an integer") }
        case "number"?: if value.doubleValue == nil { out.append("\(path): expected a number") }
        default: break
        }
        return out
    }
}

import JSON
import LibCrypto

/// T-Bank's request signature (docs/providers.md#tbank-token): the root object's
/// scalar fields (nested objects and arrays such as `Receipt` and `DATA` do not take part),
/// plus `Password`, sorted by key in byte order, values concatenated with no separator
/// (numbers as their JSON text, booleans as `true`/`false`), SHA-256, lowercase hex.
///
/// ```swift
/// let token = TBankToken.sign(["TerminalKey": "K", "Amount": 19200, "OrderId": "21090"], password: "pw")
/// ```
public enum TBankToken {
    public static func sign(_ object: JSON, password: String) -> String {
        guard case .object(let pairs) = object else { return "" }
        var fields: [(String, String)] = pairs.compactMap { key, value in
            guard key != "Token", let text = value.scalarText else { return nil }
            return (key, text)
        }
        fields.append(("Password", password))
        fields.sort { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
        return Crypto.sha256Hex(fields.map(\.1).joined())
    }

    /// True when the object's `Token` matches (constant-time comparison).
    public static func verify(_ object: JSON, password: String) -> Bool {
        guard let given = object["Token"]?.stringValue else { return false }
        let expected = sign(object, password: password)
        return Crypto.constantTimeEqual(Array(given.lowercased().utf8), Array(expected.utf8))
    }

    /// The object with its `Token` added (requests we send).
    public static func signed(_ object: JSON, password: String) -> JSON {
        guard case .object(var pairs) = object else { return object }
        pairs.removeAll { $0.0 == "Token" }
        pairs.append(("Token", .string(sign(.object(pairs), password: password))))
        return .object(pairs)
    }
}

import Platform

/// Reads `KEY=VALUE` env files (systemd's `EnvironmentFile` syntax, a subset): `#` comments,
/// blank lines, an optional `export `, and values in single or double quotes.
///
/// ```swift
/// let vars = try EnvFile.parse("DATABASE_URL=postgres:///pinglass\n")
/// ```
public enum EnvFile {
    public static func load(_ path: String) throws -> [String: String] {
        guard let bytes = System.readFile(path) else {
            throw ConfigError.unreadableFile(path)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError.malformedFile(path: path, line: 0, reason: "not UTF-8")
        }
        return try parse(text, path: path)
    }

    /// Lines end with `\n`, `\r\n` (a file saved on Windows) or `\r`. Errors name the line
    /// and never quote it: a malformed line may be a pasted secret.
    public static func parse(_ text: String, path: String = "<env>") throws -> [String: String] {
        var out: [String: String] = [:]
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }
        for (n, raw) in lines.enumerated() {
            var line = Substring(String(raw).trimmingSpaces())
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = line.dropFirst(7) }
            guard let eq = line.firstIndex(of: "=") else {
                throw ConfigError.malformedFile(path: path, line: n + 1, reason: "expected KEY=VALUE")
            }
            let key = String(line[..<eq]).trimmingSpaces()
            guard let first = key.first, !first.isNumber,
                  key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) || $0 == "_" }) else {
                throw ConfigError.malformedFile(path: path, line: n + 1,
                                                reason: "expected KEY=VALUE, KEY made of ASCII letters, digits and _ (not starting with a digit)")
            }
            var value = Substring(String(line[line.index(after: eq)...]).trimmingSpaces())
            if value.count >= 2, let q = value.first, q == "\"" || q == "'", value.last == q {
                value = value.dropFirst().dropLast()
            }
            out[key] = String(value)
        }
        return out
    }
}

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

    public static func parse(_ text: String, path: String = "<env>") throws -> [String: String] {
        var out: [String: String] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(raw)
            while let f = line.first, f == " " || f == "\t" { line = line.dropFirst() }
            while let l = line.last, l == " " || l == "\t" || l == "\r" { line = line.dropLast() }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = line.dropFirst(7) }
            guard let eq = line.firstIndex(of: "=") else {
                throw ConfigError.malformedFile(path: path, line: n + 1, reason: "expected KEY=VALUE")
            }
            let key = String(line[..<eq]).trimmingSpaces()
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }), !(key.first!.isNumber) else {
                throw ConfigError.malformedFile(path: path, line: n + 1, reason: "invalid variable name '\(key)'")
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

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}

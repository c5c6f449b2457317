extension String {
    /// Without leading and trailing spaces and tabs (what Foundation's trimming would do for
    /// the values we read: env files, settings, conninfo strings).
    public func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}

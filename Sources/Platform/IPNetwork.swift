#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 network in CIDR notation (`10.20.0.0/16`, `2001:db8::/32`; a bare
/// address is that one host), and the test whether an address is in it. Parsed with
/// `inet_pton`, so only the standard textual forms count.
///
/// ```swift
/// let net = IPNetwork("10.20.0.0/16")!
/// net.contains("10.20.3.4")                        // true
/// IPNetwork.isLoopback("::1")                      // true
/// IPNetwork.isLoopback("::ffff:127.0.0.1")          // true (IPv4-mapped)
/// ```
public struct IPNetwork: Sendable, Equatable {
    /// 4 bytes (IPv4) or 16 (IPv6), host bits cleared.
    public let bytes: [UInt8]
    public let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = Self.parse(String(parts[0])) else { return nil }
        let bits = address.count * 8
        var prefix = bits
        if parts.count == 2 {
            guard let n = Int(parts[1]), parts[1].allSatisfy(\.isNumber), (0...bits).contains(n) else { return nil }
            prefix = n
        }
        bytes = Self.masked(address, prefix)
        prefixLength = prefix
    }

    /// Whether `address` (textual IPv4 or IPv6) lies in this network. An IPv4-mapped IPv6
    /// address (`::ffff:10.0.0.1`) is compared as the IPv4 address it carries.
    public func contains(_ address: String) -> Bool {
        guard let a = Self.parse(address).map(Self.unmapped) else { return false }
        return a.count == bytes.count && Self.masked(a, prefixLength) == bytes
    }

    /// 127.0.0.0/8 and ::1 (also IPv4-mapped): a caller on this machine.
    public static func isLoopback(_ address: String) -> Bool {
        loopback.contains { $0.contains(address) }
    }

    static let loopback = [IPNetwork("127.0.0.0/8")!, IPNetwork("::1/128")!]

    /// The 4 or 16 bytes of a textual address; nil when it is not one.
    static func parse(_ text: String) -> [UInt8]? {
        var v4 = [UInt8](repeating: 0, count: 4)
        if inet_pton(AF_INET, text, &v4) == 1 { return v4 }
        var v6 = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET6, text, &v6) == 1 { return v6 }
        return nil
    }

    /// `::ffff:a.b.c.d` as the 4 bytes of a.b.c.d; anything else unchanged.
    static func unmapped(_ a: [UInt8]) -> [UInt8] {
        guard a.count == 16, a[0..<10].allSatisfy({ $0 == 0 }), a[10] == 0xff, a[11] == 0xff else { return a }
        return Array(a[12...])
    }

    static func masked(_ a: [UInt8], _ prefix: Int) -> [UInt8] {
        a.enumerated().map { i, byte in
            let keep = min(max(prefix - i * 8, 0), 8)
            return keep == 8 ? byte : byte & UInt8(truncatingIfNeeded: 0xff << (8 - keep))
        }
    }
}

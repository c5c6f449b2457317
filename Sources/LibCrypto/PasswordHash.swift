import COpenSSL

/// Password hashes for operator accounts: PBKDF2-HMAC-SHA256 from libcrypto, stored as one
/// self-describing string `pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>` (the
/// iteration count travels with the hash, so raising the default later leaves old hashes
/// verifiable). Verification recomputes with the stored parameters and compares in constant
/// time.
///
/// ```swift
/// let stored = PasswordHash.make("correct horse")          // pbkdf2-sha256$600000$…$…
/// PasswordHash.verify("correct horse", against: stored)    // true
/// ```
public enum PasswordHash {
    /// The iterations new hashes use (OWASP's figure for PBKDF2-HMAC-SHA256).
    public static let defaultIterations = 600_000
    /// Hashes with fewer iterations than this are refused when verifying, whatever they say.
    public static let minimumIterations = 600_000
    static let scheme = "pbkdf2-sha256"
    static let keyLength = 32

    /// PBKDF2-HMAC-SHA256 of `password` with `salt`; nil only if libcrypto fails.
    public static func pbkdf2SHA256(password: [UInt8], salt: [UInt8], iterations: Int, length: Int = 32) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: length)
        let rc = password.withUnsafeBufferPointer { p in
            salt.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBufferPointer { o in
                    p.withMemoryRebound(to: CChar.self) { pc in
                        PKCS5_PBKDF2_HMAC(pc.baseAddress, Int32(p.count), s.baseAddress, Int32(s.count), Int32(iterations),
                                          EVP_sha256(), Int32(length), o.baseAddress)
                    }
                }
            }
        }
        return rc == 1 ? out : nil
    }

    /// A new stored hash of `password` with a fresh 16-byte salt.
    public static func make(_ password: String, iterations: Int = defaultIterations) -> String {
        let salt = Crypto.randomBytes(16)
        guard let hash = pbkdf2SHA256(password: Array(password.utf8), salt: salt, iterations: iterations, length: keyLength) else {
            preconditionFailure("PKCS5_PBKDF2_HMAC failed")
        }
        return "\(scheme)$\(iterations)$\(Crypto.base64(salt))$\(Crypto.base64(hash))"
    }

    /// True when `password` matches `stored`; false for any malformed or weaker stored string.
    public static func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == scheme, let iterations = Int(parts[1]),
              iterations >= minimumIterations, iterations <= 10_000_000,
              let salt = Crypto.base64Decode(parts[2]), !salt.isEmpty,
              let expected = Crypto.base64Decode(parts[3]), expected.count >= 16,
              let actual = pbkdf2SHA256(password: Array(password.utf8), salt: salt, iterations: iterations, length: expected.count)
        else { return false }
        return Crypto.constantTimeEqual(actual, expected)
    }

    /// A hash of nothing anyone knows, verified against when the login names no account, so
    /// an unknown name costs the same time as a wrong password.
    public static let decoy: String = make(Crypto.hex(Crypto.randomBytes(16)))
}

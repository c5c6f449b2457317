import Foundation
import PinGlass
import Postgres
import ProviderWire

/// Images and rows the generation tests share.
public enum GenerationFixtures {
    public static let mediaSecret = "test-media-key-secret-0123456789"

    /// Bytes that start like a JPEG (the magic bytes are all the server checks), distinct per `seed`.
    public static func jpeg(_ seed: Int = 0, size: Int = 64) -> [UInt8] {
        [0xFF, 0xD8, 0xFF, 0xE0] + (0..<max(0, size - 4)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) }
    }

    public static func png(_ seed: Int = 0) -> [UInt8] {
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + (0..<32).map { UInt8(truncatingIfNeeded: $0 &+ seed) }
    }

    /// A user with an avatar holding one reference photo (row only) and a succeeded payment;
    /// returns (avatar id, payment row id, bank payment id). See `JobFixtures.readyToGenerate`.
    @discardableResult
    public static func readyToGenerate(_ db: Connection, telegramID: Int64, tier: String = "starter", photos: Int = 7,
                                       terminal: String = "test") throws -> (avatarID: Int, paymentID: Int, bankID: String) {
        try JobFixtures.readyToGenerate(db, telegramID: telegramID, tier: tier, photos: photos, terminal: terminal)
    }
}

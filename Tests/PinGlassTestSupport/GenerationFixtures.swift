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
    /// returns (avatar id, payment row id, bank payment id).
    @discardableResult
    public static func readyToGenerate(_ db: Connection, telegramID: Int64, tier: String = "starter", photos: Int = 7,
                                       terminal: String = "test") throws -> (avatarID: Int, paymentID: Int, bankID: String) {
        let userID = try Users.resolve(db, TelegramUser(id: telegramID, username: nil, firstName: "T", lastName: nil, languageCode: nil))
        let avatarID = try db.query("INSERT INTO avatars (user_id, name, status) VALUES ($1, 'me', 'ready') RETURNING id",
                                    [userID], retry: .never)[0].requiredInt("id")
        try db.execute("""
            INSERT INTO reference_photos (avatar_id, storage_key, content_type, byte_size, sha256)
            VALUES ($1, 'references/' || md5(random()::text) || '.jpg', 'image/jpeg', 100, sha256(random()::text::bytea))
            """, [avatarID], retry: .never)
        let bankID = String(Int.random(in: 100_000_000...999_999_999))
        let paymentID = try db.query("""
            INSERT INTO payments (user_id, order_id, terminal, terminal_key, tbank_payment_id, tier, photo_count, amount_kopecks,
                                  status, paid_at, redirect_due_at)
            VALUES ($1, 'pg' || md5(random()::text), $2, 'k', $3, $4, $5, 49900, 'succeeded', now(), now() + interval '1 day')
            RETURNING id
            """, [userID, terminal, bankID, tier, photos], retry: .never)[0].requiredInt("id")
        return (avatarID, paymentID, bankID)
    }
}

import XCTest
import PinGlassConfig
import Platform
@testable import Postgres
@testable import PinGlass
@testable import Providers

final class ConfigTests: XCTestCase {
    let base = ["DATABASE_URL": "host=/tmp dbname=x"]

    func testMissingDatabaseURLNamesTheVariable() {
        XCTAssertThrowsError(try Config(variables: [:])) { error in
            XCTAssertEqual(error as? ConfigError, .missing("DATABASE_URL"))
            XCTAssertTrue("\(error)".contains("DATABASE_URL"))
        }
    }

    /// With no env file anywhere, the refusal says where it looked and how to name one.
    func testNoEnvFileAnywhereSaysHowToNameOne() {
        XCTAssertFalse(System.fileExists(Config.defaultEnvFile), "this test needs a machine without \(Config.defaultEnvFile)")
        XCTAssertThrowsError(try Config.load(environment: [:], envFile: nil)) { error in
            XCTAssertEqual(error as? ConfigError, .noConfiguration(defaultFile: Config.defaultEnvFile))
            XCTAssertTrue("\(error)".contains("--env-file"), "\(error)")
        }
        // An env file that was read but lacks DATABASE_URL still names the variable plainly.
        XCTAssertThrowsError(try Config.load(environment: [:], envFile: "/dev/null")) { error in
            XCTAssertEqual(error as? ConfigError, .missing("DATABASE_URL"))
        }
    }

    func testDefaultsAreTheContractDefaults() throws {
        let c = try Config(variables: base)
        XCTAssertEqual(c.tbankAPIURL, "https://securepay.tinkoff.ru/v2")
        XCTAssertEqual(c.kieAPIURL, "https://api.kie.ai")
        XCTAssertEqual(c.telegramAPIURL, "https://api.telegram.org")
        XCTAssertEqual(c.kieRateLimit, 20)
        XCTAssertEqual(c.kiePollRPS, 10)
        XCTAssertEqual(c.initDataMaxAge, 86400)
        XCTAssertEqual(c.logFormat, .json)
        XCTAssertEqual(c.storage, .fs)
        XCTAssertNil(c.tbankProduction)
        XCTAssertNil(c.tbankTest)
    }

    func testMalformedValuesNameTheVariableAndHideTheValue() {
        let cases: [(String, String)] = [
            ("PUBLIC_BASE_URL", "ftp://secret-host"), ("KIE_RATE_LIMIT", "lots"), ("INIT_DATA_MAX_AGE", "-5"),
            ("LOG_FORMAT", "xml"), ("STORAGE", "floppy"), ("ADMIN_TELEGRAM_CHAT_ID", "abc"), ("TBANK_API_URL", "securepay"),
            ("MEDIA_KEY_SECRET", "short"), ("MEDIA_KEY_SECRET", "0123456789abcdef\"; return 200; #"),
            ("MEDIA_KEY_SECRET", "0123456789abcdef$host"), ("MEDIA_KEY_SECRET", "0123456789abcdef with spaces"),
            ("TELEGRAM_WEBHOOK_SECRET", "has spaces in it"), ("TELEGRAM_WEBHOOK_SECRET", "dots.are.not.allowed"),
            ("TELEGRAM_WEBHOOK_SECRET", String(repeating: "a", count: 257)),
        ]
        for (name, value) in cases {
            var vars = base
            vars[name] = value
            XCTAssertThrowsError(try Config(variables: vars), name) { error in
                guard case .invalid(let n, _) = error as? ConfigError else { return XCTFail("\(name): \(error)") }
                XCTAssertEqual(n, name)
                XCTAssertFalse("\(error)".contains(value), "the message must not echo the value")
            }
        }
    }

    /// Telegram's `secret_token` alphabet and length; unset is nil (the webhook does not exist).
    func testTelegramWebhookSecret() throws {
        XCTAssertNil(try Config(variables: base).telegramWebhookSecret)
        var vars = base
        vars["TELEGRAM_WEBHOOK_SECRET"] = "Ab_9-" + String(repeating: "x", count: 251)
        XCTAssertEqual(try Config(variables: vars).telegramWebhookSecret?.count, 256)
    }

    func testTerminalNeedsBothKeyAndPassword() {
        var vars = base
        vars["TBANK_TEST_TERMINAL_KEY"] = "DEMO"
        XCTAssertThrowsError(try Config(variables: vars)) { XCTAssertEqual($0 as? ConfigError, .missing("TBANK_TEST_PASSWORD")) }
        vars["TBANK_TEST_PASSWORD"] = "pw"
        XCTAssertEqual(try Config(variables: vars).terminal(for: .test), TBankTerminal(key: "DEMO", password: "pw"))
        XCTAssertNil(try Config(variables: vars).terminal(for: .production))
    }

    func testS3NeedsItsVariables() {
        var vars = base
        vars["STORAGE"] = "s3"
        XCTAssertThrowsError(try Config(variables: vars)) { XCTAssertEqual($0 as? ConfigError, .missing("S3_ENDPOINT")) }
    }

    /// STORAGE picks the backend; S3 links are presigned on the configured endpoint and bucket,
    /// fs links point at PUBLIC_MEDIA_URL (else PUBLIC_BASE_URL/media).
    func testStorageSelectsTheMediaBackend() throws {
        let fs = Dependencies.makeMediaStore(try Config(variables: base.merging(
            ["STORAGE_DIR": "/srv/media", "PUBLIC_BASE_URL": "https://pinglass.example", "MEDIA_KEY_SECRET": "0123456789abcdef0123"]) { $1 }))
        XCTAssertEqual((fs as? FileMediaStore)?.directory, "/srv/media")
        XCTAssertTrue(fs.signedURL(key: "references/a.jpg", expiresIn: 60, now: 0).hasPrefix("https://pinglass.example/media/references/a.jpg?md5="))
        let s3 = Dependencies.makeMediaStore(try Config(variables: base.merging(
            ["STORAGE": "s3", "S3_ENDPOINT": "https://acct.r2.cloudflarestorage.com/", "S3_BUCKET": "photos", "S3_REGION": "auto",
             "S3_ACCESS_KEY_ID": "AKID", "S3_SECRET_ACCESS_KEY": "s3-secret-value"]) { $1 }))
        let url = s3.signedURL(key: "references/a.jpg", expiresIn: 60, now: 0)
        XCTAssertTrue(url.hasPrefix("https://acct.r2.cloudflarestorage.com/photos/references/a.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                                    + "&X-Amz-Credential=AKID%2F19700101%2Fauto%2Fs3%2Faws4_request&"), url)
        XCTAssertFalse(url.contains("s3-secret-value"))
        let defaultRegion = Dependencies.makeMediaStore(try Config(variables: base.merging(
            ["STORAGE": "s3", "S3_ENDPOINT": "https://s3.example", "S3_BUCKET": "b", "S3_ACCESS_KEY_ID": "AKID", "S3_SECRET_ACCESS_KEY": "x"]) { $1 }))
        XCTAssertTrue(defaultRegion.signedURL(key: "k", expiresIn: 60, now: 0).contains("%2Fus-east-1%2Fs3%2F"))
    }

    func testEnvFileSyntax() throws {
        let vars = try EnvFile.parse("""
            # comment
            export DATABASE_URL="host=/run/postgresql dbname=pinglass"

            LOG_FORMAT='text'
            KIE_RESULT_HOSTS = a.example, b.example
            EMPTY=
            """)
        XCTAssertEqual(vars["DATABASE_URL"], "host=/run/postgresql dbname=pinglass")
        XCTAssertEqual(vars["LOG_FORMAT"], "text")
        XCTAssertEqual(vars["EMPTY"], "")
        let c = try Config(variables: vars)
        XCTAssertEqual(c.kieResultHosts, ["a.example", "b.example"])
    }

    func testEnvFileErrorsNameTheLine() {
        XCTAssertThrowsError(try EnvFile.parse("A=1\nthis is not an assignment\n", path: "/x.env")) { error in
            XCTAssertEqual(error as? ConfigError, .malformedFile(path: "/x.env", line: 2, reason: "expected KEY=VALUE"))
        }
        XCTAssertThrowsError(try EnvFile.parse("1BAD=x"))
    }

    func testEnvFileAcceptsEveryLineEnding() throws {
        for newline in ["\r\n", "\r", "\n"] {
            let text = ["# saved elsewhere", "DATABASE_URL=host=/tmp dbname=x", "LOG_FORMAT='text'", "", "KIE_MODEL = m", ""]
                .joined(separator: newline)
            let vars = try EnvFile.parse(text)
            XCTAssertEqual(vars, ["DATABASE_URL": "host=/tmp dbname=x", "LOG_FORMAT": "text", "KIE_MODEL": "m"],
                           newline.unicodeScalars.map { "\($0.value)" }.joined(separator: ","))
        }
        XCTAssertThrowsError(try EnvFile.parse("A=1\r\nnot an assignment\r\n", path: "/x.env")) { error in
            XCTAssertEqual(error as? ConfigError, .malformedFile(path: "/x.env", line: 2, reason: "expected KEY=VALUE"))
        }
    }

    /// A malformed line may be a secret pasted on its own line: errors give its number only.
    func testEnvFileErrorsNeverQuoteTheLine() {
        for line in ["sk_live_51HpastedSecret", "dGhpcyBpcyBh+c2VjcmV0/==", "my token=abc", "9LIVES=x"] {
            XCTAssertThrowsError(try EnvFile.parse("A=1\n\(line)\n", path: "/x.env"), line) { error in
                guard case .malformedFile(let path, let n, _) = error as? ConfigError else { return XCTFail("\(error)") }
                XCTAssertEqual(path, "/x.env")
                XCTAssertEqual(n, 2)
                let message = "\(error)"
                for part in line.split(whereSeparator: { "=+/ ".contains($0) }) where part.count > 2 {
                    XCTAssertFalse(message.contains(part), "\(message) quotes \(part)")
                }
            }
        }
    }

    func testProviderURLsMustBeHTTPSUnlessLoopback() throws {
        let names = ["PUBLIC_BASE_URL", "TBANK_API_URL", "KIE_API_URL", "TELEGRAM_API_URL", "S3_ENDPOINT", "PUBLIC_MEDIA_URL"]
        let accepted = ["https://pay.example.com/v2", "https://[2001:db8::1]:8443", "http://127.0.0.1:8080", "http://127.9.8.7/x",
                        "http://localhost:9000/", "http://LOCALHOST", "http://[::1]:8080"]
        let refused = ["http://pay.example.com", "http://127.0.0.1.nip.io", "http://localhost.example.com:80",
                       "http://128.0.0.1", "http://[::2]", "http://10.0.0.1", "ftp://127.0.0.1", "https:///v2", "https://h st"]
        for name in names {
            for value in accepted {
                var vars = base
                vars[name] = value
                XCTAssertNoThrow(try Config(variables: vars), "\(name)=\(value)")
            }
            for value in refused {
                var vars = base
                vars[name] = value
                XCTAssertThrowsError(try Config(variables: vars), "\(name)=\(value)") { error in
                    guard case .invalid(let n, _) = error as? ConfigError else { return XCTFail("\(name): \(error)") }
                    XCTAssertEqual(n, name)
                    XCTAssertTrue("\(error)".hasPrefix("\(name) is invalid: must be an https:// URL"), "\(error)")
                    XCTAssertFalse("\(error)".contains(value), "the message must not echo the value")
                }
            }
        }
        var vars = base
        vars["PUBLIC_BASE_URL"] = "http://127.0.0.1:8080/"
        XCTAssertEqual(try Config(variables: vars).publicBaseURL, "http://127.0.0.1:8080")
    }

    func testEnvironmentWinsOverEnvFileAndMissingFileIsAnError() throws {
        let path = NSTemporaryDirectory() + "pinglass-\(UUID().uuidString).env"
        try "DATABASE_URL=from-file\nLOG_LEVEL=debug\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let c = try Config.load(environment: ["DATABASE_URL": "from-env"], envFile: path)
        XCTAssertEqual(c.databaseURL, "from-env")
        XCTAssertEqual(c.logLevel, .debug)
        let viaVariable = try Config.load(environment: ["PINGLASS_ENV_FILE": path], envFile: nil)
        XCTAssertEqual(viaVariable.databaseURL, "from-file")
        XCTAssertThrowsError(try Config.load(environment: [:], envFile: path + ".missing")) { error in
            XCTAssertEqual(error as? ConfigError, .unreadableFile(path + ".missing"))
        }
    }

    func testDatabaseDefaultsAreAddedOnlyWhenAbsent() {
        XCTAssertEqual(Database.withDefaults("host=/tmp dbname=x", applicationName: "t"),
                       "host=/tmp dbname=x connect_timeout=3 application_name=t")
        XCTAssertEqual(Database.withDefaults("postgres://u@h/db?sslmode=require", applicationName: "t"),
                       "postgres://u@h/db?sslmode=require&connect_timeout=3&application_name=t")
        XCTAssertEqual(Database.withDefaults("postgres://h/db?connect_timeout=9&application_name=x", applicationName: "t"),
                       "postgres://h/db?connect_timeout=9&application_name=x")
    }
}

import HTTPClient
#if canImport(Glibc)
import Glibc
#endif

/// Media as files under `STORAGE_DIR`, served by nginx at `PUBLIC_MEDIA_URL` only with a
/// valid expiring signature (nginx `secure_link`, see nginx/pinglass.conf):
/// `<PUBLIC_MEDIA_URL>/<key>?md5=<sig>&expires=<unix time>`, where `sig` is the unpadded
/// base64url MD5 of `"<expires><uri> <MEDIA_KEY_SECRET>"` and `uri` is `/media/<key>`.
/// MD5 is what nginx's module offers; the secret is what makes the link unforgeable.
///
/// Writes go to a temporary file in the same folder, then `rename`: atomic.
public final class FileMediaStore: MediaStore {
    public let directory: String
    public let publicURL: String
    let secret: String
    /// The path prefix nginx serves the folder at (the `location` of the secure link).
    let uriPrefix: String

    public init(directory: String, publicURL: String, secret: String) {
        self.directory = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        self.secret = secret
        let path = HTTPURL(self.publicURL)?.path ?? "/media"
        self.uriPrefix = path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    public func put(key: String, bytes: [UInt8], contentType: String) throws {
        let path = try self.path(key)
        let folder = String(path[..<path.lastIndex(of: "/")!])
        do { try System.makeDirectories(folder) } catch { throw MediaStoreError.unavailable("\(error)") }
        let temp = folder + "/.tmp-" + Crypto.hex(Crypto.randomBytes(8))
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw MediaStoreError.unavailable("cannot create \(temp): errno \(errno)") }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let e = errno
                close(fd); unlink(temp)
                throw MediaStoreError.unavailable("cannot write \(temp): errno \(e)")
            }
            written += n
        }
        let synced = fsync(fd) == 0
        close(fd)
        guard synced, rename(temp, path) == 0 else {
            let e = errno
            unlink(temp)
            throw MediaStoreError.unavailable("cannot store \(key): errno \(e)")
        }
    }

    public func get(key: String) throws -> [UInt8] {
        let path = try self.path(key)
        guard let bytes = System.readFile(path) else { throw MediaStoreError.notFound(key: key) }
        return bytes
    }

    public func delete(key: String) throws {
        let path = try self.path(key)
        if unlink(path) != 0 && errno != ENOENT { throw MediaStoreError.unavailable("cannot delete \(key): errno \(errno)") }
    }

    public func signedURL(key: String, expiresIn: Int, now: Double) -> String {
        let expires = Int(now) + expiresIn
        let uri = uriPrefix + "/" + key
        let digest = Crypto.md5(Array("\(expires)\(uri) \(secret)".utf8))
        return publicURL + "/" + key + "?md5=" + Crypto.base64URL(digest) + "&expires=\(expires)"
    }

    /// Walks the prefix's folder (files only; the `.tmp-` leftovers of an interrupted `put`
    /// included, so they are found too). Every call walks the whole folder: fine for the
    /// single-machine store this is.
    public func list(prefix: String, after: String?, limit: Int) throws -> [StoredObject] {
        guard prefix.hasSuffix("/"), MediaKeys.isValid(String(prefix.dropLast())) else { return [] }
        var found: [StoredObject] = []
        func walk(_ folderKey: String) {
            for name in System.listDirectory(directory + "/" + folderKey) ?? [] {
                let key = folderKey + name
                var st = stat()
                guard lstat(directory + "/" + key, &st) == 0 else { continue }   // gone meanwhile
                switch st.st_mode & S_IFMT {
                case S_IFDIR: walk(key + "/")
                case S_IFREG:
                    if after.map({ key > $0 }) ?? true {
                        found.append(StoredObject(key: key, modifiedAt: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9))
                    }
                default: break
                }
            }
        }
        walk(prefix)
        return Array(found.sorted { $0.key < $1.key }.prefix(limit))
    }

    /// Keys are ours (MediaKeys), but a path never leaves the folder whatever the key.
    func path(_ key: String) throws -> String {
        guard MediaKeys.isValid(key) else { throw MediaStoreError.notFound(key: key) }
        return directory + "/" + key
    }
}


using System.Security.Cryptography;
using System.Text;

namespace Backup.Commands.Common;

/// <summary>RFC 9562 name-based UUIDv5, used where a second writer must collide instead of duplicating.</summary>
public static class DeterministicGuid
{
    public static readonly Guid BackupNamespace = new("6f1c5a52-2f7e-4b8e-9a0e-1d6f6a0b7c11");

    public static Guid Create(Guid namespaceId, string name)
    {
        Span<byte> ns = stackalloc byte[16];
        namespaceId.TryWriteBytes(ns, bigEndian: true, out _);
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var input = new byte[16 + nameBytes.Length];
        ns.CopyTo(input);
        nameBytes.CopyTo(input, 16);
#pragma warning disable CA5350 // SHA-1 is what RFC 9562 prescribes for v5; it is an identifier, not a signature.
        var hash = SHA1.HashData(input);
#pragma warning restore CA5350
        hash[6] = (byte)((hash[6] & 0x0F) | 0x50);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash.AsSpan(0, 16), bigEndian: true);
    }

    public static Guid Create(string name) => Create(BackupNamespace, name);
}

using System.Security.Cryptography;
using System.Text;

namespace Backup.Commands.Common;

/// <summary>The 64-bit key of a PostgreSQL advisory lock, from a name that says what it guards (and, in it, the schema).</summary>
public static class AdvisoryLockKey
{
    public static long For(string name) => BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes(name)).AsSpan(0, 8));
}

using System.Text;

namespace Backup.Benchmarks;

/// <summary>
/// The benchmark input: 64 MiB alternating 1 MiB of random bytes (already-compressed media, archives) and
/// 1 MiB of text-like bytes (pseudo-words drawn with a skewed frequency, numbers, punctuation: zstd -3 gets
/// roughly 3:1, like documents and source). Deterministic, so every run and every tool sees the same bytes.
/// </summary>
public static class BenchData
{
    public const int Length = 64 << 20;
    public const string PathVariable = "BACKUP_BENCH_DATA";

    public static byte[] Load()
    {
        var path = Environment.GetEnvironmentVariable(PathVariable);
        if (!string.IsNullOrEmpty(path) && File.Exists(path)) return File.ReadAllBytes(path);
        return Make();
    }

    public static byte[] Make()
    {
        var data = new byte[Length];
        var random = new Random(20261125);
        for (var offset = 0; offset < Length; offset += 1 << 20)
        {
            var piece = data.AsSpan(offset, 1 << 20);
            if ((offset >> 20) % 2 == 0) random.NextBytes(piece);
            else Text(random, piece.Length).CopyTo(piece);
        }
        return data;
    }

    private static byte[] Text(Random random, int length)
    {
        const string syllables = "ba be bi bo bu da de di do du ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo vu an en in on un ar er ir or ur st tr pr";
        var parts = syllables.Split(' ');
        var words = new string[4000];
        for (var i = 0; i < words.Length; i++)
        {
            var sb = new StringBuilder();
            var n = 1 + random.Next(4);
            for (var j = 0; j < n; j++) sb.Append(parts[random.Next(parts.Length)]);
            words[i] = sb.ToString();
        }
        var text = new StringBuilder(length + 64);
        while (text.Length < length)
        {
            var skew = random.NextDouble();
            text.Append(words[(int)(skew * skew * skew * words.Length)]);
            var r = random.Next(100);
            text.Append(r switch
            {
                < 80 => " ",
                < 88 => ", ",
                < 94 => ". ",
                < 97 => " " + random.Next(100000) + " ",
                _ => ".\n",
            });
        }
        return Encoding.ASCII.GetBytes(text.ToString(0, length));
    }
}

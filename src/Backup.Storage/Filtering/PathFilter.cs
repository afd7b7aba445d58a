namespace Backup.Storage.Filtering;

/// <summary>
/// The include and exclude patterns of a folder data source, shared by the server (which refuses a pattern it could not
/// honour) and the agent (which honours them while it walks). Paths and patterns are relative to the protected folder and
/// '/'-separated; matching is ordinal (case-sensitive).
/// <list type="bullet">
/// <item><c>*</c> matches any run of characters within one name, <c>?</c> one character (neither crosses a '/').</item>
/// <item><c>**</c>, as a whole part of the pattern, matches any number of folders, none included.</item>
/// <item>A pattern without a '/' (other than a trailing one) matches the name at any depth: <c>*.log</c> is <c>**/*.log</c>.
/// A pattern with a '/' inside is anchored at the protected folder: <c>docs/*.md</c> matches <c>docs/a.md</c> only.</item>
/// <item>A trailing '/' matches folders only: <c>tmp/</c> is every folder named tmp.</item>
/// <item>A folder that matches stands for everything in it: an excluded folder is not even entered; an included one
/// brings all it holds.</item>
/// <item>No include pattern means everything is included. Exclusion wins over inclusion.</item>
/// </list>
/// </summary>
public sealed class PathFilter
{
    public const int MaxPatterns = 64;
    public const int MaxPatternLength = 256;

    public static readonly PathFilter Everything = new([], []);

    private readonly Pattern[] _include;
    private readonly Pattern[] _exclude;

    private PathFilter(Pattern[] include, Pattern[] exclude)
    {
        _include = include;
        _exclude = exclude;
    }

    public bool HasIncludes => _include.Length > 0;

    public bool IsEverything => _include.Length == 0 && _exclude.Length == 0;

    /// <exception cref="ArgumentException">A pattern is not valid (see <see cref="Problem"/>).</exception>
    public static PathFilter Create(IEnumerable<string>? include, IEnumerable<string>? exclude)
    {
        var inc = (include ?? []).Select(Pattern.Parse).ToArray();
        var exc = (exclude ?? []).Select(Pattern.Parse).ToArray();
        return inc.Length == 0 && exc.Length == 0 ? Everything : new PathFilter(inc, exc);
    }

    /// <summary>Why <paramref name="pattern"/> cannot be used, or null when it can.</summary>
    public static string? Problem(string? pattern)
    {
        if (string.IsNullOrWhiteSpace(pattern)) return "must not be empty";
        if (pattern.Length > MaxPatternLength) return $"must be at most {MaxPatternLength} characters";
        if (pattern.Any(char.IsControl)) return "must not contain control characters";
        if (pattern[0] is '/' or '\\' || (pattern.Length >= 2 && char.IsAsciiLetter(pattern[0]) && pattern[1] == ':'))
            return "must be relative to the protected folder, not absolute";
        if (pattern.Contains('\\')) return "must use '/' to separate folders";
        var parts = (pattern.EndsWith('/') ? pattern[..^1] : pattern).Split('/');
        if (parts.Any(p => p.Length == 0)) return "must not have an empty part ('//')";
        if (parts.Any(p => p is "." or "..")) return "must not have '.' or '..' parts";
        if (parts.Any(p => p != "**" && p.Contains("**", StringComparison.Ordinal))) return "may use '**' only as a whole part (e.g. 'a/**/b')";
        return null;
    }

    /// <summary>The item is out of scope: an exclude pattern matches it (a folder is then not entered).</summary>
    public bool IsExcluded(string path, bool isDirectory) => Any(_exclude, path, isDirectory);

    /// <summary>An include pattern matches the item itself (true for everything when there is no include pattern).</summary>
    public bool Includes(string path, bool isDirectory) => _include.Length == 0 || Any(_include, path, isDirectory);

    /// <summary>Whether something inside the folder <paramref name="directoryPath"/> could match an include pattern, so it is worth entering.</summary>
    public bool MayIncludeBelow(string directoryPath)
    {
        if (_include.Length == 0) return true;
        var segments = directoryPath.Split('/');
        return _include.Any(p => p.MayMatchBelow(segments));
    }

    private static bool Any(Pattern[] patterns, string path, bool isDirectory)
    {
        if (patterns.Length == 0) return false;
        var segments = path.Split('/');
        return patterns.Any(p => (isDirectory || !p.DirectoryOnly) && p.Matches(segments));
    }

    private sealed class Pattern(string[] segments, bool directoryOnly)
    {
        public bool DirectoryOnly { get; } = directoryOnly;

        public static Pattern Parse(string text)
        {
            if (Problem(text) is { } problem) throw new ArgumentException($"The pattern '{text}' {problem}.", nameof(text));
            var directoryOnly = text.EndsWith('/');
            var body = directoryOnly ? text[..^1] : text;
            var parts = body.Split('/').ToList();
            if (parts.Count == 1 && parts[0] != "**") parts.Insert(0, "**");
            // Consecutive '**' mean the same as one.
            var collapsed = new List<string>(parts.Count);
            foreach (var p in parts)
                if (!(p == "**" && collapsed.Count > 0 && collapsed[^1] == "**")) collapsed.Add(p);
            return new Pattern([.. collapsed], directoryOnly);
        }

        public bool Matches(string[] path) => Consume(path).Contains(segments.Length);

        /// <summary>Some longer path starting with <paramref name="path"/> could match: part of the pattern is left to match it.</summary>
        public bool MayMatchBelow(string[] path) => Consume(path).Any(state => state < segments.Length);

        /// <summary>
        /// Runs the pattern as a small automaton over the path's names: a state is how many parts of the pattern are matched,
        /// '**' may stay in place or be skipped. Linear in path length × pattern length, whatever the number of '**'.
        /// </summary>
        private HashSet<int> Consume(string[] path)
        {
            var states = Closure([0]);
            foreach (var name in path)
            {
                var next = new HashSet<int>();
                foreach (var state in states)
                {
                    if (state == segments.Length) continue;
                    if (segments[state] == "**") next.Add(state);
                    else if (NameMatches(segments[state], name)) next.Add(state + 1);
                }
                states = Closure(next);
                if (states.Count == 0) break;
            }
            return states;
        }

        private HashSet<int> Closure(HashSet<int> states)
        {
            foreach (var state in states.ToArray())
                for (var s = state; s < segments.Length && segments[s] == "**"; s++) states.Add(s + 1);
            return states;
        }

        /// <summary>'*' and '?' within one name; on a mismatch the last '*' takes one more character (linear backtracking).</summary>
        private static bool NameMatches(string pattern, string name)
        {
            int p = 0, n = 0, star = -1, starName = 0;
            while (n < name.Length)
            {
                if (p < pattern.Length && (pattern[p] == '?' || pattern[p] == name[n]))
                {
                    p++;
                    n++;
                }
                else if (p < pattern.Length && pattern[p] == '*')
                {
                    star = p++;
                    starName = n;
                }
                else if (star >= 0)
                {
                    p = star + 1;
                    n = ++starName;
                }
                else
                {
                    return false;
                }
            }
            while (p < pattern.Length && pattern[p] == '*') p++;
            return p == pattern.Length;
        }
    }
}

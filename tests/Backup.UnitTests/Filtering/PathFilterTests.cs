using Backup.Storage.Filtering;

namespace Backup.UnitTests.Filtering;

public sealed class PathFilterTests
{
    [Theory]
    [InlineData("*.log", "app.log", false, true)]
    [InlineData("*.log", "var/deep/app.log", false, true)]
    [InlineData("*.log", "app.log.1", false, false)]
    [InlineData("**/*.docx", "report.docx", false, true)]
    [InlineData("**/*.docx", "a/b/report.docx", false, true)]
    [InlineData("docs/*.md", "docs/a.md", false, true)]
    [InlineData("docs/*.md", "x/docs/a.md", false, false)]
    [InlineData("docs/*.md", "docs/sub/a.md", false, false)]
    [InlineData("docs/**/*.md", "docs/a.md", false, true)]
    [InlineData("docs/**/*.md", "docs/sub/deeper/a.md", false, true)]
    [InlineData("tmp/", "tmp", true, true)]
    [InlineData("tmp/", "a/b/tmp", true, true)]
    [InlineData("tmp/", "tmp", false, false)]
    [InlineData("cache/**", "cache", true, true)]
    [InlineData("file?.txt", "file1.txt", false, true)]
    [InlineData("file?.txt", "file10.txt", false, false)]
    [InlineData("a*b*c", "aXXbYYc", false, true)]
    [InlineData("a*b*c", "aXXbYY", false, false)]
    [InlineData("*.LOG", "app.log", false, false)]
    public void A_pattern_matches_as_documented(string pattern, string path, bool isDirectory, bool matches) =>
        PathFilter.Create(null, [pattern]).IsExcluded(path, isDirectory).ShouldBe(matches);

    [Fact]
    public void Without_include_patterns_everything_is_included_and_every_folder_entered()
    {
        var filter = PathFilter.Create(null, ["*.tmp"]);
        filter.HasIncludes.ShouldBeFalse();
        filter.Includes("any/thing.txt", false).ShouldBeTrue();
        filter.MayIncludeBelow("any").ShouldBeTrue();
    }

    [Fact]
    public void Include_patterns_enter_only_folders_that_could_hold_a_match()
    {
        var anchored = PathFilter.Create(["docs/2026/*.md"], null);
        anchored.MayIncludeBelow("docs").ShouldBeTrue();
        anchored.MayIncludeBelow("docs/2026").ShouldBeTrue();
        anchored.MayIncludeBelow("docs/2025").ShouldBeFalse();
        anchored.MayIncludeBelow("photos").ShouldBeFalse();
        anchored.Includes("docs/2026/a.md", false).ShouldBeTrue();
        anchored.Includes("docs/2026/a.txt", false).ShouldBeFalse();

        var anywhere = PathFilter.Create(["*.docx"], null);
        anywhere.MayIncludeBelow("any/where/at/all").ShouldBeTrue();
    }

    [Fact]
    public void Many_double_stars_match_in_linear_time()
    {
        var pattern = string.Join('/', Enumerable.Repeat("**/a", 40)) + "/b";
        var path = string.Join('/', Enumerable.Repeat("a", 200));
        PathFilter.Create(null, [pattern]).IsExcluded(path, false).ShouldBeFalse();
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("   ", "empty")]
    [InlineData("/etc/passwd", "absolute")]
    [InlineData("C:/data", "absolute")]
    [InlineData("\\\\server\\share", "absolute")]
    [InlineData("a\\b", "'/'")]
    [InlineData("../secrets", "'..'")]
    [InlineData("a/./b", "'..'")]
    [InlineData("a//b", "empty part")]
    [InlineData("a**", "'**'")]
    [InlineData("a\tb", "control")]
    public void Patterns_that_could_not_be_honoured_are_refused(string pattern, string reason)
    {
        PathFilter.Problem(pattern).ShouldNotBeNull().ShouldContain(reason);
        Should.Throw<ArgumentException>(() => PathFilter.Create([pattern], null));
    }

    [Fact]
    public void A_pattern_is_at_most_256_characters()
    {
        PathFilter.Problem(new string('a', PathFilter.MaxPatternLength)).ShouldBeNull();
        PathFilter.Problem(new string('a', PathFilter.MaxPatternLength + 1)).ShouldNotBeNull();
    }
}

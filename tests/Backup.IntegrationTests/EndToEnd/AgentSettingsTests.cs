using Backup.IntegrationTests.Infrastructure;

namespace Backup.IntegrationTests.EndToEnd;

/// <summary>A setting the agent cannot honour stops it at start with the setting named, before it enrols or reads anything.</summary>
public sealed class AgentSettingsTests
{
    [Theory]
    [InlineData("0")]
    [InlineData("20")]
    public async Task A_compression_level_zstd_does_not_have_stops_the_agent_naming_the_setting(string level)
    {
        var state = Directory.CreateTempSubdirectory("agent-settings-");
        try
        {
            await using var agent = ProductProcess.Start("Backup.Agent", new Dictionary<string, string>(),
                "--Agent:Server=http://127.0.0.1:9/", "--Agent:StateDirectory=" + state.FullName, "--Agent:CompressionLevel=" + level);

            (await agent.ExitCodeAsync(TimeSpan.FromSeconds(60))).ShouldBe(2, agent.Output);
            agent.Output.ShouldContain("Agent:CompressionLevel must be a zstd level from 1 to 19");
            state.EnumerateFileSystemInfos().ShouldBeEmpty(); // no credential, no cache: nothing was started
        }
        finally
        {
            state.Delete(recursive: true);
        }
    }
}

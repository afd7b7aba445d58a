using Backup.Projections;
using Npgsql;
using Shouldly;
using Xunit;

namespace Backup.UnitTests.Catalog;

public sealed class CatalogStoreTests
{
    [Fact]
    public void The_store_prepares_its_repeated_statements_unless_the_connection_string_says_otherwise()
    {
        var on = new NpgsqlConnectionStringBuilder(CatalogStore.WithAutoPrepare("Host=db;Port=5432;Username=u;Database=backup"));
        on.MaxAutoPrepare.ShouldBe(CatalogStore.AutoPreparedStatements);
        on.Host.ShouldBe("db");
        on.Database.ShouldBe("backup");

        new NpgsqlConnectionStringBuilder(CatalogStore.WithAutoPrepare("Host=db;Max Auto Prepare=0")).MaxAutoPrepare.ShouldBe(0);
        new NpgsqlConnectionStringBuilder(CatalogStore.WithAutoPrepare("Host=db; max auto prepare = 7")).MaxAutoPrepare.ShouldBe(7);
        // Only the minimum usages given: the number of statements still gets the store's default.
        var minOnly = new NpgsqlConnectionStringBuilder(CatalogStore.WithAutoPrepare("Host=db;Auto Prepare Min Usages=2"));
        minOnly.MaxAutoPrepare.ShouldBe(CatalogStore.AutoPreparedStatements);
        minOnly.AutoPrepareMinUsages.ShouldBe(2);
    }
}

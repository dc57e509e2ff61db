# fleet-script: fix.firewall_rule
# fleet-version: 2
# Changes the local copy of one firewall rule: enables or disables it, sets its profiles and/or
# its local port. Params: {"name", "enabled"?, "profiles"?: [...], "local_port"?: 3390 | "Any"}.
# Reads the rule once, changes it with one Set-NetFirewallRule call (only what differs), reads
# it back once. Idempotent: asked again, it changes nothing.
#
# The rule is read from the local registry store gather.ps1 reads (the value name is the rule
# ID, the data its [MS-GPFAS] 2.2.2.19 string), not with Get-NetFirewallRule, which enumerates
# every rule through CIM: tens of seconds on a host with thousands of them. Set-NetFirewallRule
# writes the PersistentStore, its default store ("activated on the computer immediately"),
# which is that key; a rule that exists only in the Group Policy store is not there and the
# cmdlet fails on it, and a Group Policy rule of the same ID overwrites the local one in the
# ActiveStore (-Name), so fleet never plans either: Group Policy rules change in the GPO.
# https://learn.microsoft.com/powershell/module/netsecurity/set-netfirewallrule
# Its -Name "Wildcard characters are accepted": an ID holding * ? [ ] is refused, so one call
# never changes other rules than the one read. It is a CDXML command of a script module: the
# prologue's $ErrorActionPreference does not reach it ("Functions from a module don't run in a
# child scope of the calling scope. Modules have their own session state", about_Scopes,
# MicrosoftDocs/PowerShell-Docs reference/5.1/Microsoft.PowerShell.Core/About/about_Scopes.md),
# so it gets -ErrorAction Stop, and every field asked for must read back as asked.
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
$p = $ParamsJson | ConvertFrom-Json
$name = [string]$p.name
if (-not $name) { throw 'fix.firewall_rule: a rule name is required' }
if ($name.IndexOfAny([char[]]'*?[]') -ge 0) { throw "fix.firewall_rule: '$name' holds a wildcard character; a rule ID is matched literally" }
$localStore = 'HKLM:\SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy\FirewallRules'

function Read-Rule {
    # What fleet changes, from the rule string: Active= (absent: disabled), Profile= (absent:
    # every profile), LPort= / LPort2_10= (absent: any port).
    $text = $null
    if (Test-Path -LiteralPath $localStore) { $text = (Get-Item -LiteralPath $localStore).GetValue($name) }
    if ($null -eq $text) { throw "fix.firewall_rule: no rule '$name' in the local firewall store" }
    $fields = @([string]$text -split '\|')
    $profiles = @($fields | Where-Object { $_ -like 'Profile=*' } | ForEach-Object { ($_ -split '=', 2)[1] })
    if ($profiles.Count -eq 0) { $profiles = @('Domain', 'Private', 'Public') }
    $ports = @($fields | Where-Object { $_ -like 'LPort=*' -or $_ -like 'LPort2_10=*' } | ForEach-Object { ($_ -split '=', 2)[1] })
    if ($ports.Count -eq 0) { $ports = @('Any') }
    return [ordered]@{ enabled = ($fields -contains 'Active=TRUE'); profiles = $profiles; local_ports = $ports }
}

$before = Read-Rule
$set = @{}
$asked = @()
if ($null -ne $p.enabled) {
    $asked += , @('enabled', "firewall rule $name")
    if ([bool]$p.enabled -ne $before.enabled) {
        if ([bool]$p.enabled) { $set['Enabled'] = 'True' } else { $set['Enabled'] = 'False' }
    }
}
if ($null -ne $p.profiles) {
    $asked += , @('profiles', "firewall rule $name Profile")
    $wanted = @($p.profiles | ForEach-Object { [string]$_ })
    if (($wanted -join ',') -ne ($before.profiles -join ',')) { $set['Profile'] = ($wanted -join ',') }
}
if ($null -ne $p.local_port) {
    $asked += , @('local_ports', "firewall rule $name LocalPort")
    $wanted = @(([string]$p.local_port) -split ',')
    if (($wanted -join ',') -ne ($before.local_ports -join ',')) { $set['LocalPort'] = $wanted }
}
if ($set.Count -gt 0) { Set-NetFirewallRule -Name $name @set -ErrorAction Stop }
$after = Read-Rule
# Every field asked for reads back as asked (profiles and ports as sets: the store keeps its
# own order).
$wantedNow = @{ enabled = $p.enabled; profiles = $p.profiles; local_ports = $p.local_port }
foreach ($item in $asked) {
    $field = $item[0]
    $want = (@(@($wantedNow[$field]) | ForEach-Object { ([string]$_) -split ',' }) | Sort-Object) -join ','
    if ($field -eq 'enabled') { $want = [string][bool]$p.enabled }
    $got = (@($after[$field] | ForEach-Object { [string]$_ }) | Sort-Object) -join ','
    if ($want -ne $got) { throw "fix.firewall_rule: $field of '$name' reads $got after the change, not $want" }
}

$changes = @(foreach ($item in $asked) {
        $field, $target = $item
        $was, $now = $before[$field], $after[$field]
        @{ target = $target; before = $was; after = $now; changed = ((@($was) -join ',') -ne (@($now) -join ',')) }
    })
Write-Frame @{ changes = $changes }

# fleet-script: custom.pagefile.fix
# fleet-version: 1
#
# Example custom fix (playbooks/example-custom.yml), for the custom.pagefile check. The
# contract of a custom fix script: ParamsJson is {"desired": {field: value, ...}}; it changes
# only what differs, answers ONE frame {"changes": [{target, before, after, changed}]} and is
# idempotent. fleet plans it from the check's document and the desired values (never by
# running it) and undoes it by running it again with the values seen before.
#
# Fields: automatic_managed (Win32_ComputerSystem.AutomaticManagedPagefile, read/write) and
# initial_mb (InitialSize in MB of the first Win32_PageFileSetting; null: no fixed size, so an
# existing setting is deleted, as the undo of a size set where there was none). With
# automatic management off and no page file setting, one is created on the system drive;
# MaximumSize is raised to the initial size when smaller. Page file settings "are deferred
# until startup": a reboot, which fleet never does (the playbook says reboot_required).
# Creating a Win32_PageFileSetting needs SeCreatePagefilePrivilege (administrators hold it).
#   MicrosoftDocs/win32 desktop-src/CIMWin32Prov/win32-computersystem.md (AutomaticManagedPagefile)
#   MicrosoftDocs/win32 desktop-src/CIMWin32Prov/win32-pagefilesetting.md
param([Parameter(Mandatory)][string]$ParamsJson)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

$desired = (ConvertFrom-Json -InputObject $ParamsJson).desired
if ($null -eq $desired) { throw 'custom.pagefile.fix: ParamsJson has no "desired" values' }
$fields = @($desired.PSObject.Properties | ForEach-Object { $_.Name })
foreach ($field in $fields) {
    if (@('automatic_managed', 'initial_mb') -cnotcontains $field) { throw "custom.pagefile.fix: unknown field '$field'" }
}

$changes = @()
$system = Get-CimInstance -ClassName Win32_ComputerSystem
$automatic = [bool]$system.AutomaticManagedPagefile
$wantAutomatic = $automatic
if ($fields -contains 'automatic_managed') { $wantAutomatic = [bool]$desired.automatic_managed }
$size = $null
if ($fields -contains 'initial_mb' -and $null -ne $desired.initial_mb) { $size = [uint32]$desired.initial_mb }
if ($wantAutomatic -and $null -ne $size) { throw 'custom.pagefile.fix: a fixed size needs automatic_managed false' }

if ($wantAutomatic -ne $automatic) {
    Set-CimInstance -InputObject $system -Property @{ AutomaticManagedPagefile = $wantAutomatic }
    $changes += @{ target = 'Win32_ComputerSystem.AutomaticManagedPagefile'; before = $automatic; after = $wantAutomatic; changed = $true }
}
if ($fields -contains 'initial_mb' -and $null -eq $desired.initial_mb -and -not $wantAutomatic) {
    # null: no fixed size. The undo of a size set where there was no page file setting: the
    # setting goes again (the class "SupportsDelete, DeleteBy("DeleteInstance")",
    # win32-pagefilesetting.md). Only while management stays manual: with automatic
    # management turned on, the setting is left to Windows, never deleted blind (no page file
    # at the next boot would be worse than a stale setting).
    $setting = @(Get-CimInstance -ClassName Win32_PageFileSetting) | Select-Object -First 1
    if ($null -ne $setting) {
        $before = [long]$setting.InitialSize
        Remove-CimInstance -InputObject $setting
        $changes += @{ target = 'Win32_PageFileSetting.InitialSize'; before = $before; after = $null; changed = $true }
    }
}
if ($null -ne $size) {
    $setting = @(Get-CimInstance -ClassName Win32_PageFileSetting) | Select-Object -First 1
    $before = $null
    if ($null -ne $setting) { $before = [long]$setting.InitialSize }
    if ($before -ne $size) {
        if ($null -eq $setting) {
            $file = Join-Path $env:SystemDrive 'pagefile.sys'
            New-CimInstance -ClassName Win32_PageFileSetting -Property @{ Name = $file; InitialSize = $size; MaximumSize = $size } | Out-Null
        }
        else {
            $maximum = [uint32]$setting.MaximumSize
            if ($maximum -lt $size) { $maximum = $size }
            Set-CimInstance -InputObject $setting -Property @{ InitialSize = $size; MaximumSize = $maximum }
        }
        $changes += @{ target = 'Win32_PageFileSetting.InitialSize'; before = $before; after = [long]$size; changed = $true }
    }
}

$json = ConvertTo-Json -InputObject @{ changes = $changes } -Depth 5 -Compress
Write-Output ('<<FLEET-JSON>>' + $json + '<<FLEET-END>>')

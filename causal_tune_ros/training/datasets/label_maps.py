"""Official label maps from each data set's own ids to the 19 Cityscapes train ids (255 = ignore).

Every map is a dict ``source id -> train id``; :func:`lookup_table` turns one into a 256-entry uint8 table
(ids not in the dict map to 255), which a reader applies with one indexing operation.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

IGNORE_ID = 255
NUM_TRAIN_IDS = 19

#: Cityscapes ``labelIds`` -> train ids (cityscapesScripts ``labels.py``). GTAV labels use the same ids.
#: Ids not listed (unlabeled, ego vehicle, rectification border, out of roi, static, dynamic, ground,
#: parking, rail track, guard rail, bridge, tunnel, polegroup, caravan, trailer, license plate) are ignored.
CITYSCAPES_ID_TO_TRAIN_ID: dict[int, int] = {
    7: 0,  # road
    8: 1,  # sidewalk
    11: 2,  # building
    12: 3,  # wall
    13: 4,  # fence
    17: 5,  # pole
    19: 6,  # traffic light
    20: 7,  # traffic sign
    21: 8,  # vegetation
    22: 9,  # terrain
    23: 10,  # sky
    24: 11,  # person
    25: 12,  # rider
    26: 13,  # car
    27: 14,  # truck
    28: 15,  # bus
    31: 16,  # train
    32: 17,  # motorcycle
    33: 18,  # bicycle
}

#: Mapillary Vistas v1.2 label ids (index in ``config.json`` ``labels``, the pixel value of ``v1.2/labels``)
#: and their names. 65 classes plus ``void--unlabeled`` (65).
VISTAS_V12_CLASSES: tuple[str, ...] = (
    "animal--bird",  # 0
    "animal--ground-animal",  # 1
    "construction--barrier--curb",  # 2
    "construction--barrier--fence",  # 3
    "construction--barrier--guard-rail",  # 4
    "construction--barrier--other-barrier",  # 5
    "construction--barrier--wall",  # 6
    "construction--flat--bike-lane",  # 7
    "construction--flat--crosswalk-plain",  # 8
    "construction--flat--curb-cut",  # 9
    "construction--flat--parking",  # 10
    "construction--flat--pedestrian-area",  # 11
    "construction--flat--rail-track",  # 12
    "construction--flat--road",  # 13
    "construction--flat--service-lane",  # 14
    "construction--flat--sidewalk",  # 15
    "construction--structure--bridge",  # 16
    "construction--structure--building",  # 17
    "construction--structure--tunnel",  # 18
    "human--person",  # 19
    "human--rider--bicyclist",  # 20
    "human--rider--motorcyclist",  # 21
    "human--rider--other-rider",  # 22
    "marking--crosswalk-zebra",  # 23
    "marking--general",  # 24
    "nature--mountain",  # 25
    "nature--sand",  # 26
    "nature--sky",  # 27
    "nature--snow",  # 28
    "nature--terrain",  # 29
    "nature--vegetation",  # 30
    "nature--water",  # 31
    "object--banner",  # 32
    "object--bench",  # 33
    "object--bike-rack",  # 34
    "object--billboard",  # 35
    "object--catch-basin",  # 36
    "object--cctv-camera",  # 37
    "object--fire-hydrant",  # 38
    "object--junction-box",  # 39
    "object--mailbox",  # 40
    "object--manhole",  # 41
    "object--phone-booth",  # 42
    "object--pothole",  # 43
    "object--street-light",  # 44
    "object--support--pole",  # 45
    "object--support--traffic-sign-frame",  # 46
    "object--support--utility-pole",  # 47
    "object--traffic-light",  # 48
    "object--traffic-sign--back",  # 49
    "object--traffic-sign--front",  # 50
    "object--trash-can",  # 51
    "object--vehicle--bicycle",  # 52
    "object--vehicle--boat",  # 53
    "object--vehicle--bus",  # 54
    "object--vehicle--car",  # 55
    "object--vehicle--caravan",  # 56
    "object--vehicle--motorcycle",  # 57
    "object--vehicle--on-rails",  # 58
    "object--vehicle--other-vehicle",  # 59
    "object--vehicle--trailer",  # 60
    "object--vehicle--truck",  # 61
    "object--vehicle--wheeled-slow",  # 62
    "void--car-mount",  # 63
    "void--ego-vehicle",  # 64
    "void--unlabeled",  # 65
)

#: Vistas v1.2 -> Cityscapes train ids, as the domain-generalisation literature evaluates Cityscapes-trained
#: models on Vistas (the conversion used by the mmseg-based DG/UDA code bases). It is deliberately
#: conservative: only classes that are the same concept as a Cityscapes class map; everything else is
#: ignored, including classes Cityscapes itself ignores (parking, rail track, guard rail, bridge, tunnel,
#: caravan, trailer, ego vehicle) and ambiguous ones (bike lane, crosswalk-plain, service lane,
#: crosswalk-zebra marking, curb cut, pedestrian area, street light, sign frame/back, sand, snow, water,
#: other vehicle, barrier, objects).
VISTAS_V12_TO_TRAIN_ID: dict[int, int] = {
    13: 0,  # construction--flat--road -> road
    24: 0,  # marking--general (lane markings; Cityscapes labels markings as road) -> road
    41: 0,  # object--manhole (in the road surface; Cityscapes includes it in road) -> road
    2: 1,  # construction--barrier--curb (Cityscapes' sidewalk includes curbs) -> sidewalk
    15: 1,  # construction--flat--sidewalk -> sidewalk
    17: 2,  # construction--structure--building -> building
    6: 3,  # construction--barrier--wall -> wall
    3: 4,  # construction--barrier--fence -> fence
    45: 5,  # object--support--pole -> pole
    47: 5,  # object--support--utility-pole -> pole
    48: 6,  # object--traffic-light -> traffic light
    50: 7,  # object--traffic-sign--front -> traffic sign
    30: 8,  # nature--vegetation -> vegetation
    29: 9,  # nature--terrain -> terrain
    27: 10,  # nature--sky -> sky
    19: 11,  # human--person -> person
    20: 12,  # human--rider--bicyclist -> rider
    21: 12,  # human--rider--motorcyclist -> rider
    22: 12,  # human--rider--other-rider -> rider
    55: 13,  # object--vehicle--car -> car
    61: 14,  # object--vehicle--truck -> truck
    54: 15,  # object--vehicle--bus -> bus
    58: 16,  # object--vehicle--on-rails -> train
    57: 17,  # object--vehicle--motorcycle -> motorcycle
    52: 18,  # object--vehicle--bicycle -> bicycle
}

#: Files that already hold train ids (Cityscapes/ACDC ``*_labelTrainIds.png``, BDD100K masks): 0..18 pass,
#: anything else becomes 255.
TRAIN_ID_IDENTITY: dict[int, int] = {i: i for i in range(NUM_TRAIN_IDS)}


def lookup_table(mapping: Mapping[int, int], default: int = IGNORE_ID) -> np.ndarray:
    """256-entry uint8 table: ``table[source_id] = train id`` (``default`` for ids not in ``mapping``).

    Raises:
        ValueError: A source or target id outside 0..255.
    """
    table = np.full(256, default, dtype=np.uint8)
    for src, dst in mapping.items():
        if not (0 <= int(src) <= 255 and 0 <= int(dst) <= 255):
            raise ValueError(f"label map entry {src} -> {dst} is outside 0..255")
        table[int(src)] = int(dst)
    return table


CITYSCAPES_LUT = lookup_table(CITYSCAPES_ID_TO_TRAIN_ID)
VISTAS_V12_LUT = lookup_table(VISTAS_V12_TO_TRAIN_ID)
TRAIN_ID_LUT = lookup_table(TRAIN_ID_IDENTITY)
for _lut in (CITYSCAPES_LUT, VISTAS_V12_LUT, TRAIN_ID_LUT):
    _lut.setflags(write=False)

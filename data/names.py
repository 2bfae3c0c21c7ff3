"""Name lists for the synthetic demo district: roads, communities, compounds, people, texts.

All names are invented in the style of 郑州高新区 (north-south roads end in 路, east-west ones
in 街 or 大道); any likeness to a real compound or person is chance.
"""

from __future__ import annotations

STREET_OFFICE = "石佛办事处"
MOTORWAY = "连霍高速"
# Outline sides other than the motorway (the south side).
OUTLINE_ARTERIALS = {"east": "长椿路", "north": "科学大道", "west": "西四环"}
# Interior lattice lines: north-south ones (west to east), east-west ones (south to north).
ARTERIALS_NS = ["石佛路", "雪松路", "红松路", "银屏路", "瑞达路", "金梭路", "玉兰路"]
ARTERIALS_EW = ["枫杨街", "翠竹街", "梧桐街", "莲花街", "冬青街"]

# Stems of street names (三级 cut lines): stem + 路 (north-south) or 街 (east-west).
STREET_STEMS = (
    "金柏 青桐 丁香 紫荆 海棠 白杨 银杏 香樟 木兰 芙蓉 杜鹃 月季 百合 桂花 腊梅 樱花 "
    "石楠 云杉 黄杨 水杉 红枫 碧桃 凌霄 迎春 山茶 玉簪 紫薇 含笑 茉莉 兰香 松涛 竹韵 "
    "青松 翠柏 垂柳 槐荫 榆林 桑园 杏坛 梨花 桃源 李园 柿林 枣林 榴花 葡萄 芳华 春华 "
    "秋实 冬雪 夏荷 晨曦 朝阳 夕照 明月 星光 彩虹 白云 青云 紫云 祥云 瑞雪 清风 和风 "
    "惠风 长河 清溪 碧水 泉源 湖滨 河畔 溪桥 石桥 板桥 柳桥 杏林 科苑 文苑 书院 学府 "
    "博学 求知 创新 创业 信息 智慧 数码 芯谷 光谷 天健 康平 安平 永平 太平 和平 兴华 "
    "振兴 繁华 荣华 丰华 东篱 西园 南屏 北辰 中和 正德 厚德 明德 尚德 崇德 怀德 德馨 "
    "蔚蓝 翡翠 玛瑙 琥珀 珍珠 水晶 白玉 青玉 碧玉 金玉 金穗 麦香 稻香 禾丰 田园 绿野"
).split()
ALLEY_NUMERALS = list("一二三四五六七八九")

# Community (社区) stems; a community is named stem + 社区.
COMMUNITIES = (
    "石佛 杜岭 沟赵 枫杨 银屏 翠竹 梧桐 雪松 红松 长椿 瑞达 金梭 玉兰 冬青 合欢 "
    "莲花 柳林 槐树 桃园 杏花"
).split()

# Compounds (小区) are named stem + suffix, each pair used once.
COMPOUND_STEMS = (
    "锦华 枫林 银河 翠园 和谐 阳光 幸福 康宁 金色 绿城 盛世 华庭 御景 书香 春晖 明珠 "
    "嘉禾 丰乐 安居 怡和 瑞祥 东方 新城 泰和 文博 天润 正商 建业 鑫苑 永威 美景 亚星 "
    "升龙 碧源 长城 中原 河医 电厂 国棉 水利 科技 恒丰 锦江 福瑞 世纪 金水 清华 溪岸 "
    "悦澜 宏达 祥和 紫金 恒信 钻石 金域 壹号 檀府 梧桐 雪松 红松"
).split()
COMPOUND_SUFFIXES = ["小区", "花园", "苑", "家园", "新村", "公寓", "嘉园", "名苑", "华庭", "雅居"]

DEDICATED_NAMES: dict[str, list[str]] = {
    "school": ["外国语中学", "枫杨小学", "高新区实验中学", "银屏幼儿园", "梧桐小学", "石佛中学"],
    "market": ["石佛农贸市场", "雪松综合市场", "翠竹菜市场", "冬青便民市场"],
    "hospital": ["高新区人民医院", "石佛社区医院", "红松中医门诊部"],
    "business": ["科学大道商务区", "瑞达路商业街", "长椿路创业园", "金梭路科技园"],
}
# Kinds in the order dedicated grids are placed (cycled): 6 schools, 3 markets, 3 hospitals
# and 4 business districts among the first 16.
DEDICATED_ORDER = (
    "school market hospital business school business school market hospital business "
    "school market hospital business school school"
).split()

STATION_KINDS = ["党群服务中心", "便民服务站", "养老服务站", "网格服务站", "卫生服务站"]

SURNAMES = list(
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏"
    "卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵"
)
GIVEN = list(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红梅建国志海燕春晓东亮鹏飞辉"
    "宇浩然子轩欣怡梓涵雨婷佳琪思远博文嘉豪俊新峰凤琴云莉萍丹玲晨阳振宏瑞雪松"
)
PHONE_PREFIXES = (
    "130 131 132 135 136 137 138 139 150 151 152 155 156 158 159 176 177 185 186 187 188 189"
).split()

KEY_KINDS = [("独居老人", 40), ("低保户", 20), ("残疾户", 15), ("大病户", 15), ("留守儿童", 10)]

# Incident categories: share (percent) at buildings and on streets; 0 = does not happen there.
CATEGORIES: list[tuple[str, float, float]] = [
    ("环境卫生", 15, 18),
    ("乱停车", 6, 30),
    ("噪音扰民", 12, 4),
    ("矛盾纠纷", 11, 2),
    ("管道滴漏", 10, 0),
    ("物业纠纷", 9, 0),
    ("占道经营", 0, 18),
    ("电梯故障", 6, 0),
    ("乱晾晒", 7, 2),
    ("市政设施", 3, 14),
    ("违章搭建", 6, 2),
    ("消防隐患", 7, 2),
    ("高空抛物", 4, 0),
    ("宣传广告", 4, 8),
]
SOURCES: list[tuple[str, float]] = [
    ("巡查", 40),
    ("12345", 22),
    ("热线", 12),
    ("公众号", 12),
    ("随手拍", 14),
]
# Sources whose reporter gives an address: the hotlines and the WeChat account (公众号).
ADDRESS_SOURCES = ["热线", "12345", "公众号"]

# Short descriptions; "{b}号楼" (the building) is dropped for incidents away from buildings.
DESCRIPTIONS: dict[str, list[str]] = {
    "环境卫生": ["{b}号楼楼道堆放杂物", "{b}号楼下垃圾未及时清运", "垃圾桶满溢无人清理"],
    "乱停车": ["车辆占用消防通道", "{b}号楼门口车辆堵塞出入口", "机动车占用人行道停放"],
    "噪音扰民": ["{b}号楼夜间装修噪音扰民", "{b}号楼楼上夜间噪音", "广场舞音响声音过大"],
    "矛盾纠纷": ["{b}号楼邻里因漏水发生纠纷", "{b}号楼邻里因停车位发生争执", "家庭矛盾需调解"],
    "管道滴漏": ["{b}号楼楼顶水管滴漏", "{b}号楼地下室水管破裂", "{b}号楼暖气管道漏水"],
    "物业纠纷": ["业主与物业因收费发生争议", "{b}号楼物业维修不及时", "物业服务质量差"],
    "占道经营": ["商贩占道经营", "门店出店经营占用人行道", "夜市摊点占道"],
    "电梯故障": ["{b}号楼电梯困人", "{b}号楼电梯停运需维修", "{b}号楼电梯异响"],
    "乱晾晒": ["{b}号楼沿街乱晾晒衣物", "绿化带内拉绳晾晒", "护栏上晾晒被褥"],
    "市政设施": ["井盖破损", "路灯不亮", "人行道砖松动", "雨水篦子堵塞"],
    "违章搭建": ["{b}号楼楼顶违章搭建", "{b}号楼一楼私搭乱建", "沿街违章搭建彩钢房"],
    "消防隐患": ["{b}号楼电动车楼道充电", "{b}号楼消防栓损坏", "飞线充电存在隐患"],
    "高空抛物": ["{b}号楼高空抛物", "{b}号楼阳台花盆坠落隐患"],
    "宣传广告": ["乱贴小广告", "违规设置广告牌", "{b}号楼单元门张贴小广告"],
}

# Categories that crowd in a planted hotspot, in the order the hotspots take them.
HOTSPOT_CATEGORIES = ["噪音扰民", "管道滴漏", "乱停车", "高空抛物", "电梯故障", "消防隐患"]
